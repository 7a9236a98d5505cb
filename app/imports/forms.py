from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField


class UploadForm(FlaskForm):
    file = FileField(
        "CSV file",
        description="UTF-8 CSV with a header line, at most 10 MB. Commas, semicolons or tabs between values.",
        validators=[FileRequired(message="Choose a CSV file to upload.")],
    )


class MappingForm(FlaskForm):
    """The preview's form: the upload it is about; the columns' fields are ``column-<n>`` selects."""

    upload = HiddenField()
