-- shape: projection pushdown: only used columns leave the Parquet source
SELECT i.sku, o.status FROM sales.items i JOIN sales.orders o ON o.order_id = i.order_id
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "o"."order_id" AS "order_id", "o"."status" AS "status" FROM "orders" AS "o"
merge scan 1 @ lake: read by the merge itself
  READ_PARQUET('<mesh>/data/lake/items.parquet')
merge @ duckdb: merge of the fragments
  SELECT "i"."sku" AS "sku", "o"."status" AS "status" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i" CROSS JOIN "__fragment_1" AS "o" WHERE "i"."order_id" = "o"."order_id"
