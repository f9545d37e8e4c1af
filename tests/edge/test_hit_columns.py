"""One stored form of a hit for every writer (recorder.columns): the column list is the
hits table's, and the SQLite, writer-process and PostgreSQL paths format a hit alike."""

from __future__ import annotations

import datetime as dt

from mailbeacon.recorder import Hit
from mailbeacon.recorder.columns import (
    HIT_COLUMNS,
    format_flat,
    stored_row,
    stored_rows,
    utc_datetime,
)
from mailbeacon.recorder.sqlite import format_rows, params_of, stamp
from mailbeacon.store.privacy import anonymize
from mailbeacon.store.schema import hits

HIT = Hit(
    1_700_000_000.25, "click", 3, 40, 5, 2, "203.0.113.77",
    b" Mozilla/5.0 " + b"x" * 2000, b"de-CH\x00", "GET",
)  # fmt: skip
OTHER = Hit(1_700_000_001.0, "open", 3, 41, 6, None, "2001:db8:1:2::9", None, None, "GET")


def test_the_columns_are_the_hits_tables_and_hits_fields() -> None:
    assert Hit._fields == HIT_COLUMNS
    assert set(HIT_COLUMNS) <= set(hits.c.keys())
    # every column the table requires and does not fill itself is written
    required = {
        c.name for c in hits.c if not c.nullable and not c.primary_key and c.default is None
    }
    assert required <= set(HIT_COLUMNS)


def test_a_stored_row_is_formatted_and_in_column_order() -> None:
    row = stored_row(HIT, anonymize_ip=False)
    assert len(row) == len(HIT_COLUMNS)
    stored = dict(zip(HIT_COLUMNS, row, strict=True))
    assert stored["at"] == dt.datetime(2023, 11, 14, 22, 13, 20, 250000)
    assert stored["ip"] == "203.0.113.77"
    assert stored["user_agent"].startswith("Mozilla/5.0 x") and len(stored["user_agent"]) == 1000
    assert stored["accept_language"] == "de-CH"
    assert (stored["kind"], stored["message_id"], stored["link_index"]) == ("click", 40, 2)


def test_anonymising_uses_the_one_anonymize() -> None:
    assert stored_row(HIT, anonymize_ip=True)[HIT_COLUMNS.index("ip")] == anonymize(HIT.ip)
    assert stored_row(OTHER, anonymize_ip=True)[HIT_COLUMNS.index("ip")] == "2001:db8:1::"


def test_every_writer_formats_a_hit_alike() -> None:
    for anon in (False, True):
        rows = stored_rows([HIT, OTHER], anon)
        assert rows == [stored_row(HIT, anon), stored_row(OTHER, anon)]
        # SQLite (in process and the writer process): the same values, `at` as text
        sqlite = stored_rows([HIT, OTHER], anon, stamp)
        assert sqlite == [(stamp(h.at), *r[1:]) for h, r in zip([HIT, OTHER], rows, strict=True)]
        flat = [value for row in sqlite for value in row]
        assert params_of([HIT, OTHER], anon) == flat
        assert format_rows([*HIT, *OTHER], anon) == flat
        assert [r[0] for r in rows] == [utc_datetime(HIT.at), utc_datetime(OTHER.at)]


def test_format_flat_works_in_place() -> None:
    fields = list(HIT)
    assert format_flat(fields, False) is fields
    assert fields == list(stored_row(HIT, False))


def test_one_anonymize_and_the_block_enrichment_compares_is_what_it_keeps() -> None:
    import mailbeacon.recorder
    from mailbeacon.enrich.networks import reader_network

    assert mailbeacon.recorder.anonymize is anonymize  # the edge's, re-exported
    for ip in ("203.0.113.77", "2001:db8:1:2::9", "::ffff:198.51.100.7"):
        assert reader_network(ip) == reader_network(anonymize(ip))
        assert str(reader_network(ip)).split("/")[0] == anonymize(ip)
