-- shape: cross-source join merged in DuckDB
SELECT o.order_id, i.qty FROM sales.orders o JOIN sales.items i ON i.order_id = o.order_id WHERE o.amount > 900 AND i.qty > 5
-- plan
fragment __fragment_1 @ sales_db: filter "o"."amount" > 900
  SELECT "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."amount" > 900
fragment __fragment_2 @ lake: filter "i"."qty" > 5; dynamic filter: "i"."order_id" IN (keys of __fragment_1.order_id)
  SELECT "i"."order_id" AS "order_id", "i"."qty" AS "qty" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "i" WHERE "i"."qty" > 5
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id", "i"."qty" AS "qty" FROM "__fragment_1" AS "o" CROSS JOIN "__fragment_2" AS "i" WHERE "i"."order_id" = "o"."order_id"
