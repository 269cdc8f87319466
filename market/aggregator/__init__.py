"""The aggregator (issue 9): a VEN per virtual end node upstream, a VTN for its prosumers."""
