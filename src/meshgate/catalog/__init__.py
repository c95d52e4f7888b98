"""The mesh's catalog: configuration, domains, data products and what each principal may see."""
