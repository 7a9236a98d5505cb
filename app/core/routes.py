"""The front page."""

from flask import render_template

from app.core import bp
from app.jobs.forms import StartSystemCheckForm


@bp.get("/")
def home():
    return render_template("core/home.html", check_form=StartSystemCheckForm())
