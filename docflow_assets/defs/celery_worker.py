"""The Celery app Docflow's workers run (``docflow worker``): dagster-celery's step task on the
broker and settings the executor uses, so the two always agree."""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

# The code location, imported as the worker starts rather than inside its first step (~4 s).
import docflow_assets.definitions  # noqa: F401
from docflow_assets.defs.executors import celery_app_config
from docflow_assets.settings import DocflowSettings

app = make_app(CeleryExecutor.for_cli(**celery_app_config(DocflowSettings())).app_args())
execute_plan = create_task(app)
