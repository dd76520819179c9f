"""The reseller admin portal: served on each channel's own host, data in the channel's schema."""
