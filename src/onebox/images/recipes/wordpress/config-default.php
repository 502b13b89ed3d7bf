<?php
// Debian's wp-config.php reads this file for every host name; the values come from the
// machine's environment, named as in the official wordpress image.
define('DB_NAME', getenv('WORDPRESS_DB_NAME') ?: 'wordpress');
define('DB_USER', getenv('WORDPRESS_DB_USER') ?: 'wordpress');
define('DB_PASSWORD', getenv('WORDPRESS_DB_PASSWORD') ?: '');
define('DB_HOST', getenv('WORDPRESS_DB_HOST') ?: 'db');
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
$table_prefix = getenv('WORDPRESS_TABLE_PREFIX') ?: 'wp_';
