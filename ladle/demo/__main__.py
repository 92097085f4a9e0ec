"""`python -m ladle.demo` (see the package)."""

from ladle.demo import main

try:
    main()
except KeyboardInterrupt:   # Ctrl-C at the server's terminal reaches this process too
    raise SystemExit(130) from None
