"""The front page: the product for visitors, your organization for members."""

from flask import redirect, render_template
from flask_login import current_user

from app.home import bp


@bp.get("/")
def home():
    if current_user.is_authenticated:
        from app.auth.services import home_for

        return redirect(home_for(current_user))
    return render_template("home/home.html")
