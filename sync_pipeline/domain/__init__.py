"""Pure sync logic: records, normalisation, schema, diff and verification maths. No Dagster, SQL or network."""
