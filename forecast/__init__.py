"""Load forecasting and congestion detection per congestion point."""
