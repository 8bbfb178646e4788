"""Jira's defaults, seeded into the template schema and so into every new tenant."""

from django.db import migrations

ISSUE_TYPES = [
    # name, description, is_subtask, is_epic
    ("Epic", "A big user story that needs to be broken down.", False, True),
    ("Story", "A user-facing feature or requirement.", False, False),
    ("Task", "A piece of work to be done.", False, False),
    ("Bug", "A problem that impairs or prevents the functions of the product.", False, False),
    ("Sub-task", "A smaller piece of a larger issue.", True, False),
]
PRIORITIES = [
    ("Highest", 5, "#cd1317"),
    ("High", 4, "#e9494a"),
    ("Medium", 3, "#e97f33"),
    ("Low", 2, "#2d8738"),
    ("Lowest", 1, "#57a55a"),
]
STATUSES = [
    ("To Do", "TO_DO", "#42526e"),
    ("In Progress", "IN_PROGRESS", "#0052cc"),
    ("Done", "DONE", "#00875a"),
]
RESOLUTIONS = [
    ("Done", "Work has been completed."),
    ("Won't Do", "This will not be worked on."),
    ("Duplicate", "The problem is a duplicate of an existing issue."),
    ("Cannot Reproduce", "All attempts at reproducing this issue failed."),
]


def seed(apps, schema_editor):
    IssueType = apps.get_model("tickets", "IssueType")
    Priority = apps.get_model("tickets", "Priority")
    Status = apps.get_model("tickets", "Status")
    Resolution = apps.get_model("tickets", "Resolution")
    for order, (name, description, is_subtask, is_epic) in enumerate(ISSUE_TYPES):
        IssueType.objects.get_or_create(
            name=name,
            defaults={
                "description": description,
                "is_subtask": is_subtask,
                "is_epic": is_epic,
                "order": order,
            },
        )
    for name, rank, color in PRIORITIES:
        Priority.objects.get_or_create(
            name=name, defaults={"rank": rank, "color": color, "is_default": name == "Medium"}
        )
    for order, (name, category, color) in enumerate(STATUSES):
        Status.objects.get_or_create(
            name=name, defaults={"category": category, "color": color, "order": order}
        )
    for order, (name, description) in enumerate(RESOLUTIONS):
        Resolution.objects.get_or_create(
            name=name, defaults={"description": description, "order": order}
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
