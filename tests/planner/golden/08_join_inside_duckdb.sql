-- shape: join of two products in one source pushed whole
SELECT c.name, SUM(o.amount) AS total FROM sales.orders o JOIN sales.customers c ON c.customer_id = o.customer_id GROUP BY c.name ORDER BY c.name
-- plan
fragment __fragment_1 @ sales_db: whole query
  SELECT "c"."name" AS "name", SUM("o"."amount") AS "total" FROM "orders" AS "o" JOIN "customers" AS "c" ON "c"."customer_id" = "o"."customer_id" GROUP BY "c"."name" ORDER BY "name"
