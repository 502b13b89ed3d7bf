<?php
// The one server this phpMyAdmin logs in to, named as in the official image.
$cfg['Servers'][1]['host'] = getenv('PMA_HOST') ?: 'db';
$cfg['Servers'][1]['port'] = getenv('PMA_PORT') ?: '3306';
$cfg['Servers'][1]['auth_type'] = 'cookie';
$cfg['Servers'][1]['AllowNoPassword'] = false;
