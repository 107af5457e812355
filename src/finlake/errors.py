"""The finlake error hierarchy: every error a user can act on carries a one-line message."""


class FinlakeError(Exception):
    """Base class of every error finlake raises on purpose."""


class UnavailableError(FinlakeError):
    """A service finlake depends on did not answer.

    ``str()`` names the cause, for logs and the CLI; ``public`` does not, for API clients, who
    have no business learning the hosts, users or paths of the services behind the API.
    """

    def __init__(self, public: str, *, cause: object = None) -> None:
        super().__init__(public if cause is None else f"{public}: {cause}")
        self.public = public
        self.cause = cause


class ConfigurationError(FinlakeError, ValueError):
    """A setting or an input file is invalid."""


class ContractViolation(FinlakeError, ValueError):
    """Input does not satisfy a finlake contract."""


class IncompatibleSchemaError(ContractViolation):
    """A contract change breaks BACKWARD compatibility with an earlier version."""


class StackError(FinlakeError):
    """The local stack could not do what was asked."""


class JavaNotFoundError(StackError):
    """No suitable Java runtime was found."""


class PortInUseError(StackError):
    """A port the stack needs is taken by another process."""


class ArtifactError(StackError):
    """A pinned artifact could not be resolved, downloaded or verified."""


class ServiceStartError(StackError):
    """A stack service did not come up."""


class RegistryError(FinlakeError):
    """The schema registry refused a request or could not be reached."""
