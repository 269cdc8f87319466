"""The local flexibility market: congestion points, aggregators and their virtual end nodes,
flex requests, bids, clearing, dispatch as OpenADR events, measurement and settlement (USEF/UFTP
terms); `market.aggregator` is the aggregator service (a VEN upward, a VTN downward)."""
