"""U-Net and UNet++ on DSB2018: a reproducible, workflow-managed pipeline."""

__version__ = "0.1.0"
