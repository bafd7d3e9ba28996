# A stored, indexed full-text document per article on PostgreSQL, so search reads it
# instead of parsing every article's body on every query. SQLite searches by words.

from django.db import migrations

from clinic.migration_operations import PostgreSQLOnly


class Migration(migrations.Migration):
    dependencies = [("articles", "0001_initial")]

    operations = [
        PostgreSQLOnly(
            sql="""
                ALTER TABLE articles_article ADD COLUMN search_vector tsvector
                GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', coalesce(title, '')), 'A')
                    || setweight(to_tsvector('english', coalesce(summary, '')), 'B')
                    || setweight(to_tsvector('english', coalesce(body, '')), 'C')
                ) STORED;
                CREATE INDEX articles_article_search_idx
                    ON articles_article USING GIN (search_vector);
            """,
            reverse_sql="ALTER TABLE articles_article DROP COLUMN search_vector;",
        ),
    ]
