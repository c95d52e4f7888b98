"""The query model every stage shares: statements, bound and secured queries, physical names.

It sits at the bottom of the pipeline (ARCHITECTURE.md §2): parse, bind, secure, rewrite, plan
and execute all import it, and it imports none of them.
"""
