"""Small helpers every layer may import (the bottom of the layers contract): the environment
of child processes, the retry policy, the server-sent event reader. They import nothing of
ladle's."""
