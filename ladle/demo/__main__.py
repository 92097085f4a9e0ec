"""`python -m ladle.demo` (see the package)."""

from ladle.demo import main

main()
