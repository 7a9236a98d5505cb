from flask_wtf import FlaskForm


class StartSystemCheckForm(FlaskForm):
    """No fields: the form exists for its CSRF token."""
