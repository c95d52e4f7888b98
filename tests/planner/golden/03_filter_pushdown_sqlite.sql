-- shape: filter pushdown to SQLite in a cross-source join
SELECT e.name, o.order_id FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id WHERE e.region = 'EU' AND o.status <> 'cancelled'
-- plan
fragment __fragment_1 @ hr_db: filter "e"."region" = 'EU'
  SELECT "e"."id" AS "id", "e"."name" AS "name" FROM "employees" AS "e" WHERE "e"."region" = 'EU'
fragment __fragment_2 @ sales_db: filter "o"."status" <> 'cancelled'; dynamic filter: "o"."employee_id" IN (keys of __fragment_1.id)
  SELECT "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o" WHERE "o"."status" <> 'cancelled'
merge @ duckdb: merge of the fragments
  SELECT "e"."name" AS "name", "o"."order_id" AS "order_id" FROM "__fragment_1" AS "e" CROSS JOIN "__fragment_2" AS "o" WHERE "e"."id" = "o"."employee_id"
