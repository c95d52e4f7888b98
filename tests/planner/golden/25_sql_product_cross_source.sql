-- shape: SQL-defined product expands inline and federates
SELECT customer_id, total FROM sales.order_totals WHERE total > 50 ORDER BY total DESC, customer_id LIMIT 10
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "o"."customer_id" AS "customer_id", "o"."order_id" AS "order_id" FROM "orders" AS "o"
fragment __fragment_2 @ lake: scan
  SELECT "i"."order_id" AS "order_id", "i"."price" AS "price", "i"."qty" AS "qty" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i"
merge @ duckdb: merge of the fragments
  SELECT CAST("d"."customer_id" AS BIGINT) AS "customer_id", CAST("d"."total" AS DECIMAL(38, 2)) AS "total" FROM (SELECT "o"."customer_id" AS "customer_id", SUM("i"."qty" * "i"."price") AS "total" FROM "__fragment_1" AS "o" CROSS JOIN "__fragment_2" AS "i" WHERE "i"."order_id" = "o"."order_id" GROUP BY "o"."order_id", "o"."customer_id") AS "d" WHERE CAST("d"."total" AS DECIMAL(38, 2)) > 50 ORDER BY "total" DESC, "customer_id" LIMIT 10
