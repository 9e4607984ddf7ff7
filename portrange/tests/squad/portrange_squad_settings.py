# Django settings for the SQUAD server portrange/tests/squad.rs starts:
# squad's own settings (its database, storage and secret key come from the
# environment the test sets), with one change. Importing the package
# squad.frontend runs its static/download script, which fetches the web
# UI's JavaScript and CSS from CDNs (code.angularjs.org, github.com,
# cdnjs...) into the installed package; offline that import fails and takes
# every management command with it. The package is registered here without
# running that __init__, so its modules still load; only the browser UI's
# assets are missing, and the test uses the REST and submit APIs alone.
import importlib.util
import sys

sys.modules["squad.frontend"] = importlib.util.module_from_spec(
    importlib.util.find_spec("squad.frontend")
)

from squad.settings import *  # noqa: E402,F401,F403
