-- shape: RIGHT JOIN: the preserved side is the right one
SELECT e.id, o.order_id FROM sales.orders o RIGHT JOIN hr.employees e ON e.id = o.employee_id AND o.status = 'open' WHERE e.region = 'APAC'
-- plan
fragment __fragment_1 @ hr_db: whole query
  SELECT "e"."id" AS "id" FROM "employees" AS "e" WHERE "e"."region" = 'APAC'
fragment __fragment_2 @ sales_db: scan
  SELECT "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id", "o"."status" AS "status" FROM "orders" AS "o"
merge @ duckdb: merge of the fragments
  SELECT "e"."id" AS "id", "o"."order_id" AS "order_id" FROM "__fragment_2" AS "o" RIGHT JOIN "__fragment_1" AS "e" ON "e"."id" = "o"."employee_id" AND "o"."status" = 'open'
