"""Backend failures arrive as one `ModelError` line that says what to do."""

from agentlib import ModelError, generate
from agentlib.models import OpenAIModel

# Nothing listens on port 9 here: the error names the URL and says to start the server.
model = OpenAIModel("my-model", base_url="http://127.0.0.1:9/v1", max_retries=0)
try:
    generate(model, int, "How many legs has a spider?")
except ModelError as error:
    print(error)  # cannot reach the server at http://127.0.0.1:9/v1 (...); start the server, ...
    print(error.status_code, error.retryable)  # None True
