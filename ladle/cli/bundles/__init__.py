"""`ladle bundle`'s core: databricks.yml loading, interpolation, schema checks, plan, state, apply.

The command group lives in ladle/cli/bundle.py; these modules talk HTTP only through the CLI's
ApiClient (apply.py) and are unit-tested with fakes.
"""
