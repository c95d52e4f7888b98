-- shape: SQL-defined product expands inline and federates
SELECT customer_id, total FROM sales.order_totals WHERE total > 50 ORDER BY total DESC, customer_id LIMIT 10
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "o"."customer_id" AS "customer_id", "o"."order_id" AS "order_id" FROM "orders" AS "o"
merge scan 1 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge @ duckdb: merge of the fragments
  SELECT CAST("d"."customer_id" AS BIGINT) AS "customer_id", CAST("d"."total" AS DECIMAL(38, 2)) AS "total" FROM (SELECT "o"."customer_id" AS "customer_id", SUM("i"."qty" * "i"."price") AS "total" FROM "__fragment_1" AS "o" CROSS JOIN READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i" WHERE "i"."order_id" = "o"."order_id" GROUP BY "o"."order_id", "o"."customer_id") AS "d" WHERE CAST("d"."total" AS DECIMAL(38, 2)) > 50 ORDER BY "total" DESC, "customer_id" LIMIT 10
