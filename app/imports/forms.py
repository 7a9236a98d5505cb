from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField

STRICT_LABEL = "Strict mode: reject a row with any bad value"
STRICT_DESCRIPTION = (
    "Off: a bad optional value (an unknown assignee or label, a bad state, priority, due date or "
    "estimate) is left out, the row is imported and the value listed as a warning. "
    "On: such a row is not imported."
)


class UploadForm(FlaskForm):
    file = FileField(
        "CSV file",
        description="UTF-8 CSV with a header line, at most 10 MB. Commas, semicolons or tabs between values.",
        validators=[FileRequired(message="Choose a CSV file to upload.")],
    )
    strict = BooleanField(STRICT_LABEL, description=STRICT_DESCRIPTION)


class MappingForm(FlaskForm):
    """The preview's form: the upload, the mode; the columns' fields are ``column-<n>`` selects."""

    upload = HiddenField()
    strict = BooleanField(STRICT_LABEL, description=STRICT_DESCRIPTION)
