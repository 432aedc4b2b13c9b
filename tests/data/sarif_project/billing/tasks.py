"""Invoices: the fixture behind tests/golden/sarif_project.sarif (keep it small and stable)."""

import requests

from billing.celery import app

API = "https://api.example.com"


@app.task(name="facture-envoyée", bind=True, max_retries=None, time_limit=60)
def send_invoice(self, invoice_id):
    try:
        requests.post(f"{API}/invoices/{invoice_id}/send", timeout=10)
    except requests.RequestException as exc:
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc


@app.task(autoretry_for=(ConnectionError,), retry_backoff=True)
def archive_invoice(invoice_id):
    requests.put(f"{API}/invoices/{invoice_id}/archive", timeout=10)


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True, time_limit=30)
def refresh_rates(self):
    requests.get(f"{API}/rates", timeout=5)
