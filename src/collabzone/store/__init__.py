"""Storage: metadata (SQLAlchemy: SQLite or PostgreSQL) and data (encrypted Parquet)."""
