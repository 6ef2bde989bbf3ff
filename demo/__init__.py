"""The whole lifecycle on a laptop: the kit's own code paths, with moto as the AWS they call."""
