"""The transactions flow: CSV upload into bronze, rules of the hourly batch, summaries."""
