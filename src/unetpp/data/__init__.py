"""The data stages: raw data, its check and download, ingest, preprocess, split and the processed set."""
