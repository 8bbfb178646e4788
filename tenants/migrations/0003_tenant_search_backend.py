from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_tenant_max_attachment_bytes"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="search_backend",
            field=models.CharField(
                blank=True,
                choices=[
                    ("postgres", "PostgreSQL"),
                    ("opensearch", "OpenSearch"),
                    ("elasticsearch", "Elasticsearch"),
                ],
                max_length=16,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="tenant",
            name="search_shards",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
    ]
