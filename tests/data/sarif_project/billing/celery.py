from celery import Celery

app = Celery("billing")
app.conf.broker_url = "redis://localhost:6379/0"
