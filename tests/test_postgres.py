import psycopg
import pytest

pytestmark = pytest.mark.slow


def test_each_test_gets_a_fresh_database_of_a_real_postgresql(database_url, postgres):
    with psycopg.connect(database_url) as connection:
        assert connection.execute("SELECT current_database()").fetchone()[0] == database_url.rsplit("/", 1)[1]
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        assert tables == 0
    other = postgres.create_database()
    assert other != database_url
    postgres.drop_database(other)


def test_the_server_runs_as_an_unprivileged_user(postgres):
    with psycopg.connect(postgres.admin_url) as connection:
        assert connection.execute("SHOW data_directory").fetchone()[0] == str(postgres.data)
    assert postgres.data.stat().st_uid != 0
