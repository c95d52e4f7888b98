-- shape: a files join whose keys could restrict a table elsewhere only as a short list (its key range covers the probe's) read by the merge (TPC-H Q9)
SELECT o.status, SUM(a.qty) AS qty FROM sales.items a JOIN sales.items b ON b.item_id = a.item_id JOIN sales.orders o ON o.order_id = a.order_id WHERE b.sku LIKE '%1%' GROUP BY o.status ORDER BY o.status
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "o"."order_id" AS "order_id", "o"."status" AS "status" FROM "orders" AS "o"
merge scan 1 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge scan 2 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge @ duckdb: merge of the fragments
  SELECT "o"."status" AS "status", SUM("a"."qty") AS "qty" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "a" CROSS JOIN READ_PARQUET('<mesh>/data/lake/items.parquet') AS "b" CROSS JOIN "__fragment_1" AS "o" WHERE "a"."item_id" = "b"."item_id" AND "b"."sku" LIKE '%1%' AND "a"."order_id" = "o"."order_id" GROUP BY "o"."status" ORDER BY "status"
