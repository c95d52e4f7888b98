-- shape: several WHERE conjuncts of one table pushed beside an outer join
SELECT o.order_id, e.name FROM sales.orders o LEFT JOIN hr.employees e ON e.id = o.employee_id WHERE o.status = 'open' AND o.amount > 100 AND o.customer_id IS NOT NULL
-- plan
fragment __fragment_1 @ sales_db: filter "o"."amount" > 100; filter "o"."status" = 'open'; filter NOT "o"."customer_id" IS NULL
  SELECT "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."amount" > 100 AND "o"."status" = 'open' AND NOT "o"."customer_id" IS NULL
fragment __fragment_2 @ hr_db: scan
  SELECT "e"."id" AS "id", "e"."name" AS "name" FROM "employees" AS "e"
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id", "e"."name" AS "name" FROM "__fragment_1" AS "o" LEFT JOIN "__fragment_2" AS "e" ON "e"."id" = "o"."employee_id"
