-- shape: LEFT JOIN: WHERE on the preserved side is pushed
SELECT o.order_id, e.name FROM sales.orders o LEFT JOIN hr.employees e ON e.id = o.employee_id WHERE o.status = 'open'
-- plan
fragment __fragment_1 @ sales_db: filter "o"."status" = 'open'
  SELECT "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."status" = 'open'
fragment __fragment_2 @ hr_db: scan
  SELECT "e"."id" AS "id", "e"."name" AS "name" FROM "employees" AS "e"
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id", "e"."name" AS "name" FROM "__fragment_1" AS "o" LEFT JOIN "__fragment_2" AS "e" ON "e"."id" = "o"."employee_id"
