-- shape: a files join that narrows the key it is joined on stays a fragment, whose keys may then restrict the table it meets
SELECT o.status, SUM(a.qty) AS qty FROM sales.items a JOIN sales.items b ON b.item_id = a.item_id JOIN sales.orders o ON o.order_id = a.item_id WHERE b.sku LIKE '%1%' AND a.item_id BETWEEN 20 AND 60 GROUP BY o.status ORDER BY o.status
-- plan
fragment __fragment_1 @ lake: join of a, b
  SELECT "a"."item_id" AS "a__item_id", "a"."qty" AS "a__qty" FROM READ_PARQUET('<mesh>/data/lake/items.parquet') AS "a" CROSS JOIN READ_PARQUET('<mesh>/data/lake/items.parquet') AS "b" WHERE "a"."item_id" <= 60 AND "a"."item_id" >= 20 AND "a"."item_id" = "b"."item_id" AND "b"."sku" LIKE '%1%'
fragment __fragment_2 @ sales_db: dynamic filter: "o"."order_id" IN (keys of __fragment_1.a__item_id); listed keys only: the build side's size is unknown and its key range 1..600 covers 100% of the probe column's, so the probe waits for at most 100 keys
  SELECT "o"."order_id" AS "order_id", "o"."status" AS "status" FROM "orders" AS "o"
merge @ duckdb: merge of the fragments
  SELECT "o"."status" AS "status", SUM("__fragment_1"."a__qty") AS "qty" FROM "__fragment_1" AS "__fragment_1" CROSS JOIN "__fragment_2" AS "o" WHERE "__fragment_1"."a__item_id" = "o"."order_id" GROUP BY "o"."status" ORDER BY "status"
