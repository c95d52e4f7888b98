-- shape: cross-source join merged in DuckDB
SELECT o.order_id, i.qty FROM sales.orders o JOIN sales.items i ON i.order_id = o.order_id WHERE o.amount > 900 AND i.qty > 5
-- plan
fragment __fragment_1 @ sales_db: filter "o"."amount" > 900
  SELECT "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."amount" > 900
merge scan 1 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id", "i"."qty" AS "qty" FROM "__fragment_1" AS "o" CROSS JOIN READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i" WHERE "i"."order_id" = "o"."order_id" AND "i"."qty" > 5
