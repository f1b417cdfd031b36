"""Questions to validated SQL without an agent: structured and free-SQL modes."""

from agentlib.tools.sql import SQLDatabase, create_music_store, text_to_sql

from agentlib import ScriptedModel, ToolError

create_music_store("questions.db")
db = SQLDatabase("sqlite:///questions.db", query_mode="both", row_limit=50, timeout=5.0)

# Structured mode: the model fills a query object whose names are enums of the schema;
# the library writes the SQL, with the filter value as a bound parameter.
model = ScriptedModel(
    [
        {
            "table": "invoices",
            "select": [
                {"column": "invoices.billing_country"},
                {"column": "invoices.total", "aggregate": "sum"},
            ],
            "filters": [
                {"column": "invoices.invoice_date", "operator": ">=", "value": "2024-01-01"}
            ],
            "order_by": [{"column": "invoices.total", "aggregate": "sum", "direction": "desc"}],
            "limit": 3,
        }
    ]
)
answer = text_to_sql(model, db, "Which countries spent the most since 2024?")
print(answer.sql)
print(answer.result.rows if answer.result else None)

# Free-SQL mode: the validator refuses the write; the model sees why and corrects itself.
model = ScriptedModel(
    [
        {"sql": "DELETE FROM invoices WHERE total < 1"},
        {"sql": "SELECT COUNT(*) AS small FROM invoices WHERE total < 1"},
    ]
)
answer = text_to_sql(model, db, "How many invoices are under one dollar?", mode="sql")
print(answer.attempts, answer.sql, answer.result.rows if answer.result else None)

# The same validator guards db.run_sql, which the run_sql tool calls.
try:
    db.run_sql("SELECT * FROM tracks; DROP TABLE tracks")
except ToolError as refusal:
    print("refused:", refusal)
db.close()
