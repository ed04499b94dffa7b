"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from sealbox.models.file import File
from sealbox.models.login_failure import LoginFailure
from sealbox.models.token import ApiToken
from sealbox.models.user import User

__all__ = ["ApiToken", "File", "LoginFailure", "User"]
