-- The benchmark's database: Django-like bookkeeping tables, meters, and one big readings table
-- with its primary key, a foreign key to meters, and indexes on (meter_id, ts) and ts.
-- Deterministic: every value comes from integer arithmetic on the row number (no random()).
-- psql variables: meters, readings.
\set ON_ERROR_STOP 1
set client_min_messages = warning;

create table django_migrations (id serial primary key, app varchar(255) not null, name varchar(255) not null, applied timestamptz not null);
create table django_content_type (id serial primary key, app_label varchar(100) not null, model varchar(100) not null, unique (app_label, model));
create table auth_user (
  id serial primary key, password varchar(128) not null, last_login timestamptz, is_superuser boolean not null,
  username varchar(150) not null unique, first_name varchar(150) not null, last_name varchar(150) not null,
  email varchar(254) not null, is_staff boolean not null, is_active boolean not null, date_joined timestamptz not null);
create table django_session (session_key varchar(40) primary key, session_data text not null, expire_date timestamptz not null);
create index django_session_expire_date on django_session (expire_date);
create table meters (
  id serial primary key, serial varchar(32) not null unique, manufacturer varchar(32) not null,
  installed_at timestamptz not null, location text, active boolean not null default true);
create table readings (
  id bigint not null, meter_id integer not null, ts timestamptz not null, obis varchar(20) not null,
  value numeric(14, 3) not null, unit varchar(8) not null, status smallint not null, received_at timestamptz not null);

insert into django_migrations (app, name, applied)
  select 'app' || (g % 12), format('%s_migration_%s', lpad(g::text, 4, '0'), g), timestamptz '2023-01-01' + g * interval '1 hour'
    from generate_series(1, 240) g;
insert into django_content_type (app_label, model) select 'app' || (g % 12), 'model' || g from generate_series(1, 120) g;
insert into auth_user (password, last_login, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
  select 'pbkdf2_sha256$600000$' || md5(g::text) || md5((g * 7)::text), timestamptz '2024-01-01' + g * interval '1 minute', g = 1,
         'user' || g, 'First' || g, 'Last' || g, 'user' || g || '@example.com', g <= 5, true, timestamptz '2023-01-01' + g * interval '1 hour'
    from generate_series(1, 2000) g;
insert into django_session
  select md5('s' || g), repeat(md5(g::text), 8), timestamptz '2025-01-01' + g * interval '1 minute' from generate_series(1, 20000) g;
insert into meters (serial, manufacturer, installed_at, location)
  select 'LGZ' || lpad(g::text, 10, '0'), (array['Landis+Gyr', 'Kamstrup', 'Iskraemeco', 'Itron'])[1 + g % 4],
         timestamptz '2020-01-01' + g * interval '17 minutes', 'Substation ' || (g % 97) || ', feeder ' || (g % 13)
    from generate_series(1, :meters) g;
-- One reading per meter per 15 minutes, four registers in turn; the value is a multiplicative hash.
insert into readings
  select g, 1 + (g % :meters), timestamptz '2024-01-01' + (g / :meters) * interval '15 minutes',
         (array['1-0:1.8.0*255', '1-0:2.8.0*255', '1-0:1.7.0*255', '1-0:32.7.0*255'])[1 + (g / :meters) % 4],
         ((g * 2654435761) % 100000000) / 1000.0, (array['kWh', 'kWh', 'kW', 'V'])[1 + (g / :meters) % 4], (g % 17 = 0)::int,
         timestamptz '2024-01-01' + (g / :meters) * interval '15 minutes' + (g % 300) * interval '1 second'
    from generate_series(1, :readings) g;
alter table readings add primary key (id);
alter table readings add foreign key (meter_id) references meters (id);
create index readings_meter_ts on readings (meter_id, ts);
create index readings_ts on readings (ts);
vacuum analyze;
checkpoint;
