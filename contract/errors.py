"""The one error the contract raises."""


class ArtifactError(Exception):
    """A version folder that breaks the contract; the message names the folder."""
