-- shape: a function SQLite cannot run stays local
SELECT e.name FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id WHERE regexp_matches(e.name, '1[0-9]') AND e.region = 'US'
-- plan
fragment __fragment_1 @ hr_db: filter "e"."region" = 'US'
  SELECT "e"."id" AS "id", "e"."name" AS "name" FROM "employees" AS "e" WHERE "e"."region" = 'US'
fragment __fragment_2 @ sales_db: dynamic filter: "o"."employee_id" IN (keys of __fragment_1.id)
  SELECT "o"."employee_id" AS "employee_id" FROM "orders" AS "o"
merge @ duckdb: filter the source cannot evaluate: REGEXP_MATCHES("e"."name", '1[0-9]')
  SELECT "e"."name" AS "name" FROM "__fragment_1" AS "e" CROSS JOIN "__fragment_2" AS "o" WHERE REGEXP_MATCHES("e"."name", '1[0-9]') AND "e"."id" = "o"."employee_id"
