"""Migration helpers.

``DropLikeIndexes``: on PostgreSQL, Django gives every indexed ``CharField``/``TextField`` (primary keys,
unique fields, foreign keys to them) a second ``varchar_pattern_ops`` index for ``LIKE 'abc%'``. Where
a column is only ever compared for equality, that index is pure write cost: every insert maintains it.
This drops them (and puts them back on reverse). Django's own schema changes drop these indexes with
``DROP INDEX IF EXISTS``, so a later ``AlterField`` on such a column still works.

``InChannelSchema``: SQL written for one channel schema (a PL/pgSQL function that pins its own
``search_path``), run by a tenant app's migration in each schema it migrates.

``StoreWithoutCompression``: a ``bytea`` column that holds documents (PDFs, images: compressed
already) stored EXTERNAL, out of line without compression. With PostgreSQL's default EXTENDED
storage every insert first runs pglz over the value and gives up (about 10 ms of the server's CPU
for an 800 KB scan). ``tests/architecture/test_document_storage.py`` holds every such column to it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import migrations


class DropLikeIndexes(migrations.RunPython):
    def __init__(self, app_label: str, columns: dict[str, list[str]]):
        """``columns``: model name -> the fields whose ``_like`` index goes."""
        self.app_label_ = app_label
        self.columns = columns
        super().__init__(self._drop, self._create, elidable=False)

    def _each(self, apps, schema_editor):
        for model_name, field_names in self.columns.items():
            model = apps.get_model(self.app_label_, model_name)
            for field_name in field_names:
                field = model._meta.get_field(field_name)
                name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
                yield model, field, name

    def _drop(self, apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for _, _, name in self._each(apps, schema_editor):
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}", params=None)

    def _create(self, apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for model, field, _ in self._each(apps, schema_editor):
            statement = schema_editor._create_like_index_sql(model, field)
            if statement is not None:
                schema_editor.execute(statement)

    def describe(self):
        return "Drop the LIKE-pattern indexes of " + ", ".join(
            f"{model}.{field}" for model, fields in self.columns.items() for field in fields
        )


class InChannelSchema(migrations.RunPython):
    def __init__(self, create: Callable[[str], str], drop: str | None = None):
        """``create(schema)``: the SQL for the schema being migrated (quoted); ``drop``: the SQL that undoes
        it, with ``{schema}`` where the schema goes (None: nothing to undo, as for a new definition
        of what an earlier migration made). Run as written: no client-side ``%`` merging."""
        self.create_sql = create
        self.drop_sql = drop
        super().__init__(self._create, self._drop if drop is not None else migrations.RunPython.noop)

    @staticmethod
    def _schema(schema_editor) -> str:
        return schema_editor.quote_name(schema_editor.connection.schema_name)

    def _create(self, apps, schema_editor):
        schema_editor.execute(self.create_sql(self._schema(schema_editor)), params=None)

    def _drop(self, apps, schema_editor):
        schema_editor.execute(self.drop_sql.replace("{schema}", self._schema(schema_editor)), params=None)


class StoreWithoutCompression(migrations.RunSQL):
    def __init__(self, table: str, column: str):
        """``table``/``column`` as in the database (a tenant app's table: its schema's, by search_path)."""
        alter = f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET STORAGE'
        super().__init__(f"{alter} EXTERNAL", f"{alter} EXTENDED")
