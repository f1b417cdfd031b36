"""What fetch_page refuses: other schemes, and addresses inside your network.

Nothing here touches the network: each URL is refused before any connection is made.
"""

from agentlib.tools.web import WebTools

from agentlib import ToolError

web = WebTools()
for url in [
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/iam/",  # cloud credentials
    "http://10.0.0.7/admin",  # a private address
    "http://[::ffff:127.0.0.1]:8080/",  # loopback, spelt as IPv6
    "http://2130706433/",  # loopback, spelt as one decimal number
]:
    try:
        web.fetch_page.call({"url": url})
    except ToolError as error:
        print(f"{url}\n  -> {error}")
    else:
        raise AssertionError(f"{url} should have been refused")
