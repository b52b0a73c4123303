"""One click command per stage; each parses its options and calls the library function that owns the job."""
