"""Quality checks of data products: run through the query pipeline, kept in a results store."""
