"""finlake's kopf operator: reconciles MarketFeed, MedallionPipeline and AlertRule resources."""
